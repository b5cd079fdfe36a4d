"""The exception desk's operator side: the case store, ``interlock review`` and the web console.

Cases and decisions are the shared contract in :mod:`contracts.review`; the worker raises the
cases and applies the decisions. This package reads ``review.cases`` into the latest state per
case, lets people filter and inspect them, and writes their decisions to ``review.decisions``.
"""
