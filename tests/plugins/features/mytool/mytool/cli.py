"""Callables that mytool's entry points name."""


def hello(name="world"):
    return f"hello, {name}"


def add(a, b):
    return a + b


def main():
    return "console script main"
