"""vendlib.broken: a syntax error; nothing imports it. The compiler must
skip it and still compile the rest."""
def broken(:
    return
