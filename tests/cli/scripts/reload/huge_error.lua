-- Raises a message of 100,000 bytes.
error(string.rep("x", 100000), 0)
