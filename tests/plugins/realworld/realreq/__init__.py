"""realreq: imports the real requests library (Debian's, copied into deps/ by
the test together with urllib3, idna, certifi, chardet, charset_normalizer and
six). urllib3 probes for IPv6 with socket() at import time; the sandbox
answers EACCES and the import must cope."""

__deps_dir__ = "deps"

import plugbox


@plugbox.export
def version():
    import requests
    import urllib3
    return {
        "requests": requests.__version__,
        "requests_file": requests.__file__,
        "urllib3": urllib3.__version__,
    }
