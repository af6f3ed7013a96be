"""logger: the plugin's `logging` records reach the supervisor."""

import logging

import plugbox

log = logging.getLogger("logger.test")


@plugbox.export
def emit(level_name, text):
    log.log(logging.getLevelName(level_name), "%s", text)
    return True


@plugbox.export
def emit_exc():
    try:
        raise ValueError("boom for the log")
    except ValueError:
        log.exception("caught it")
    return True


@plugbox.export
def flood(n):
    for i in range(n):
        log.info("line %d", i)
    return n


@plugbox.export
def reconfigure():
    """What code that configures logging itself sees and gets."""
    import io
    root = logging.getLogger()
    fresh = not root.handlers and not log.hasHandlers()
    stream = io.StringIO()
    logging.basicConfig(stream=stream, format="%(levelname)s:%(name)s:%(message)s", level=logging.DEBUG)
    log.debug("configured %d", 1)
    root.handlers.clear()
    log.warning("no handler again")
    return {"fresh": fresh, "configured": stream.getvalue()}


@plugbox.export
def emit_as(logger_name, level_name, text):
    """A record under any logger name, the text as it is (no %-arguments)."""
    logging.getLogger(logger_name).log(logging.getLevelName(level_name), text)
    return True


@plugbox.export
def emit_percent():
    """A message with %-arguments, and one that only looks like it has them."""
    log.warning("%d%% of %s", 90, "disk")
    log.warning("100%s literally", ())
    return True
