"""echolab-compare: is a candidate build (or configuration) slower than its baseline?"""
