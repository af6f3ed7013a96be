"""requests: a PreparedRequest, built and encoded without any network."""
__deps_dir__ = "deps"

import plugbox


@plugbox.export
def run():
    import requests
    req = requests.Request("POST", "https://example.org/api", params={"q": "a b", "n": 2},
                           json={"k": [1, 2]}, headers={"X-Test": "yes"}, auth=("user", "pw"))
    prepared = requests.Session().prepare_request(req)
    return {
        "url": prepared.url,
        "body": prepared.body.decode(),
        "content_type": prepared.headers["Content-Type"],
        "content_length": prepared.headers["Content-Length"],
        "authorization": prepared.headers["Authorization"],
        "x_test": prepared.headers["X-Test"],
    }
