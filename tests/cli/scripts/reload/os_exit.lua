-- Calls os.exit while it loads.
os.exit(3)
