"""vendored: a plugin that imports real vendored packages at import time,
as plugins do. The bench fills deps/ in its copy with Debian's requests,
urllib3, idna, certifi, charset_normalizer, chardet and yaml (without
their bytecode), like tests/plugins/realworld/realreq."""

__deps_dir__ = "deps"

import requests  # noqa: E402
import yaml  # noqa: E402

import plugbox  # noqa: E402


@plugbox.export
def echo(x):
    return x


@plugbox.export
def versions():
    return {"requests": requests.__version__, "yaml": yaml.__version__}
