"""What tests share, beside the fixtures: the running mesh's handle (`stack`), the control
plane's REST helpers, the one webhook receiver, the reference documents' loader, the gRPC
probe servers, and the helpers a test folder's conftest and its modules both use.

Test modules and conftests import from here, never from a `test_*` module or a conftest
(tests/test_layout.py checks it): a helper a test module defines is private to it, and a
conftest is for fixtures, which pytest hands out by itself.
"""
