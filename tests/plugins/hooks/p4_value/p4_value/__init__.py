"""typeA and typeB."""
import time


def run(*args, **kwargs):
    time.sleep(float(kwargs.get("delay", 0)))
    return {"plugin": "p4_value", "entry": "run", "args": list(args)}


def other(*args, **kwargs):
    return "p4_value typeB"
