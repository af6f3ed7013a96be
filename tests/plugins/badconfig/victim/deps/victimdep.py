SECRET = "victim private data"
