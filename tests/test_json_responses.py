"""Responses are compact JSON in the order they were built, UTF-8 (not \\u escapes), with a
final newline; what the fast writer cannot write still goes out, the standard library's way."""

from __future__ import annotations

from flask import jsonify

from cds_service.web.app import create_app


def test_responses_are_compact_utf8_in_build_order(settings, core):
    app = create_app(settings, core)
    with app.app_context():
        response = jsonify({"z": "Vitamin B₁₂ — é", "a": [1, 2.5, None, True]})
    assert response.mimetype == "application/json"
    assert response.get_data() == '{"z":"Vitamin B₁₂ — é","a":[1,2.5,null,true]}\n'.encode()


def test_an_integer_beyond_64_bits_is_still_written(settings, core):
    app = create_app(settings, core)
    with app.app_context():
        response = jsonify({"n": 2**70})
    assert response.get_json() == {"n": 2**70}
