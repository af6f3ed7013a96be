def double(x):
    return 2 * x


def shout(text):
    return text.upper() + "!"
