-- Reaches os.exit through require "os".
require("os").exit(true)
