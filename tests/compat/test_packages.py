"""Popular packages from Debian's archive, vendored into a plugin's deps/
and called under the shipped `default` policy. Each test checks what a
user of the library would check: numbers, strings, round trips."""

import base64

from pbtest import EXIT_OK, explain, result_of


def call(plugbox, plugins, name, policies, timeout=120):
    cp = plugbox.call(plugins, name, "run", options=("--policies", policies), timeout=timeout)
    assert cp.returncode == EXIT_OK, explain(cp)
    return result_of(cp)


def test_numpy_matmul_svd_fft_with_openblas_threads(plugbox, build_plugin, compat_policies):
    plugins = build_plugin("with_numpy", ["python3-numpy"])
    r = call(plugbox, plugins, "with_numpy", compat_policies)
    assert r["file"].endswith("/deps/numpy/__init__.py"), r
    assert r["matmul"] == [[19.0, 22.0], [43.0, 50.0]]
    assert r["svd"] == [4.0, 3.0, 2.0]
    assert r["solve"] == [1.0, 2.0]
    assert r["fft"] == [1.0, 1.0, 1.0, 1.0]
    assert r["rfft_peak"] == 5
    assert r["big_matmul"] == 600.0 and r["big_trace"] == 360000.0


def test_scipy_optimize_and_sparse(plugbox, build_plugin, compat_policies):
    plugins = build_plugin("with_scipy", ["python3-scipy"])
    r = call(plugbox, plugins, "with_scipy", compat_policies)
    assert r["success"] and r["minimum"] == [1.0, 1.0, 1.0], r
    assert r["cbrt2"] == round(2 ** (1 / 3), 9)
    assert r["nnz"] == 5 and r["matvec"] == [5.0, 4.0, 2.0]
    # 4x + y = 1, x + 3y = 2, 2z = 4
    assert r["spsolve"] == [round(1 / 11, 9), round(7 / 11, 9), 2.0]


def test_pandas_groupby_csv_and_timezones(plugbox, build_plugin, compat_policies):
    plugins = build_plugin("with_pandas", ["python3-pandas"])
    r = call(plugbox, plugins, "with_pandas", compat_policies)
    assert r["by_city"] == {"Lyon": 30, "Nantes": 16}
    assert r["csv"].splitlines() == ["city,year,sales", "Lyon,2023,10", "Lyon,2024,20",
                                     "Nantes,2023,7", "Nantes,2024,9"]
    # Paris moves to summer time at 01:00 UTC on 31 March 2024.
    assert r["paris"] == ["2024-03-31T01:00:00+01:00", "2024-03-31T03:00:00+02:00",
                          "2024-03-31T04:00:00+02:00"]
    assert r["mean"] == 9.2


def test_lxml_xpath_and_xslt(plugbox, build_plugin, compat_policies):
    plugins = build_plugin("with_lxml", ["python3-lxml"])
    r = call(plugbox, plugins, "with_lxml", compat_policies)
    assert r["cheap"] == ["pen", "mug"]
    assert r["total"] == 22.0
    assert r["xslt"] == "book;mug;"
    assert r["html"] == "<html><body><p>a<b>b</b></p></body></html>"


def test_pillow_resize_and_png(plugbox, build_plugin, compat_policies):
    plugins = build_plugin("with_pillow", ["python3-pil"])
    r = call(plugbox, plugins, "with_pillow", compat_policies)
    assert r["signature"] == "89504e470d0a1a0a"
    assert r["size"] == [20, 10] and r["mode"] == "RGB"
    assert r["left"] == [255, 0, 0] and r["right"] == [0, 0, 255]


def test_cryptography_fernet_rsa_aesgcm(plugbox, build_plugin, compat_policies):
    plugins = build_plugin("with_cryptography", ["python3-cryptography"])
    r = call(plugbox, plugins, "with_cryptography", compat_policies)
    assert r["fernet"] == "secret message"
    assert r["rsa_sig_len"] == 256 and r["tampered"] == "rejected"
    # GCM specification, test case 2: ciphertext then tag.
    assert r["gcm"] == "0388dace60b6a392f328c2b971b2fe78" "ab6e47d42cec13bdf53a67b21257bddf"
    assert r["gcm_back"] == "00" * 16


def test_sqlalchemy_orm_on_sqlite(plugbox, build_plugin, compat_policies):
    plugins = build_plugin("with_sqlalchemy", ["python3-sqlalchemy"])
    r = call(plugbox, plugins, "with_sqlalchemy", compat_policies)
    assert r == {"long": ["A", "B"], "total": 400}


def test_jinja2_render_with_autoescape(plugbox, build_plugin, compat_policies):
    plugins = build_plugin("with_jinja2", ["python3-jinja2"])
    r = call(plugbox, plugins, "with_jinja2", compat_policies)
    assert r == "ADA:&lt;b&gt;x&lt;/b&gt;, BOB:a&amp;b"


def test_pydantic_coercion_and_errors(plugbox, build_plugin, compat_policies):
    plugins = build_plugin("with_pydantic", ["python3-pydantic"])
    r = call(plugbox, plugins, "with_pydantic", compat_policies)
    assert r["order"] == {"id": 7, "items": ["a", "b"], "total": 2.5}
    assert r["json"] == '{"id": 7, "items": ["a", "b"], "total": 2.5}'
    assert r["error_fields"] == [["id"]]


def test_msgpack_round_trip(plugbox, build_plugin, compat_policies):
    plugins = build_plugin("with_msgpack", ["python3-msgpack"])
    r = call(plugbox, plugins, "with_msgpack", compat_policies)
    assert r == {"small": "81a16101", "round_trip": True, "length": 27}


def test_regex_unicode_fuzzy_overlapped(plugbox, build_plugin, compat_policies):
    plugins = build_plugin("with_regex", ["python3-regex"])
    r = call(plugbox, plugins, "with_regex", compat_policies)
    assert r == {"greek": ["αβγ", "δ"], "fuzzy": True, "overlapped": ["12", "23", "34", "45"]}


def test_yaml_c_loader(plugbox, build_plugin, compat_policies):
    plugins = build_plugin("with_yaml", ["python3-yaml"])
    r = call(plugbox, plugins, "with_yaml", compat_policies)
    assert r["with_libyaml"] is True
    assert r["data"] == {"name": "plugbox", "layers": ["seccomp", "landlock"],
                         "limits": {"memory": "1G", "files": 256}}
    assert r["dumped"] == "layers:\n- seccomp\n- landlock\nlimits:\n  files: 256\n  memory: 1G\nname: plugbox\n"


def test_requests_prepared_request(plugbox, build_plugin, compat_policies):
    plugins = build_plugin("with_requests", ["python3-requests"])
    r = call(plugbox, plugins, "with_requests", compat_policies)
    assert r["url"] == "https://example.org/api?q=a+b&n=2"
    assert r["body"] == '{"k": [1, 2]}'
    assert r["content_type"] == "application/json" and r["content_length"] == "13"
    assert r["authorization"] == "Basic " + base64.b64encode(b"user:pw").decode()
    assert r["x_test"] == "yes"


def test_psutil_its_own_process(plugbox, build_plugin, compat_policies):
    plugins = build_plugin("with_psutil", ["python3-psutil"])
    r = call(plugbox, plugins, "with_psutil", compat_policies)
    assert r["pid_matches"] and r["rss_positive"] and r["cpu_user_nonnegative"], r
    # the worker's own threads plus the one the plugin started
    assert r["threads"] >= 2, r
    assert r["name"] == "plugbox-worker" and r["status"] in ("running", "sleeping"), r
