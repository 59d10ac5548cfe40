"""echolab-bench: runs a matrix of engines and loads, one real server and load generator per cell."""
