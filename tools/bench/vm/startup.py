# startup: an empty program (interpreter start-up, exit); not in the geomeans.
print("ok")
