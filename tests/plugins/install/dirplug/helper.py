def text():
    return "from a directory"
