"""msgpack's C extension: known bytes and a round trip."""
__deps_dir__ = "deps"

import plugbox


@plugbox.export
def run():
    import msgpack
    data = {"a": 1, "b": [1.5, b"\x00\xff", None, True], "c": "é"}
    packed = msgpack.packb(data)
    return {
        "small": msgpack.packb({"a": 1}).hex(),
        "round_trip": msgpack.unpackb(packed) == data,
        "length": len(packed),
    }
