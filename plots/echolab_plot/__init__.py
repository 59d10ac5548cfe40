"""echolab-plot: figures and an HTML report from an echolab-bench result set."""
