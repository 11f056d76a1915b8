"""bench/_perf.py reads perf's samples as the profile says: the innermost Python frame
takes each sample, with the native and kernel frames beneath it, and no machine path
survives in a function's name."""

from __future__ import annotations

from bench._perf import area, function_name, leaf_functions, parse_script

SCRIPT = """\
 4242
\t    7f00 HMAC
\t    7f01 py::mac:/srv/x/archives/ingress/hookpress/signatures/_common.py
\t    7f02 py::HmacScheme.check:/srv/x/archives/ingress/hookpress/signatures/_common.py

4243
\t    7f03 finish_task_switch.isra.0
\t    7f04 py::Headers.get:/v/lib/python3.12/site-packages/werkzeug/datastructures/headers.py

4243
\t    7f05 py::formatdate:/opt/python/lib/python3.12/email/utils.py

4244
\t    7f06 [unknown]
"""


def test_each_sample_goes_to_its_innermost_python_function():
    counts = leaf_functions(parse_script(SCRIPT))
    assert counts == {
        "mac (hookpress/signatures/_common.py)": 1,
        "Headers.get (werkzeug/datastructures/headers.py)": 1,
        "formatdate (email/utils.py)": 1,
        "(no Python frame)": 1,
    }
    assert all("/srv/" not in name and "/v/" not in name for name in counts)


def test_areas():
    assert area("mac (hookpress/signatures/_common.py)") == "hookpress"
    assert area("Headers.get (werkzeug/datastructures/headers.py)") == "werkzeug"
    assert area("formatdate (email/utils.py)") == "email"
    assert area("__init__ (<string>)").startswith("generated code")
    assert area("(no Python frame)") == "native only"
    assert function_name("HMAC") is None
