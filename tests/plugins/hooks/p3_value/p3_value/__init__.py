"""typeA: two entry points; they come back ordered by name (run, zrun)."""
import time


def run(*args, **kwargs):
    time.sleep(float(kwargs.get("delay", 0)))
    return {"plugin": "p3_value", "entry": "run", "args": list(args)}


def second(*args, **kwargs):
    time.sleep(float(kwargs.get("delay", 0)))
    return {"plugin": "p3_value", "entry": "zrun", "args": list(args)}
