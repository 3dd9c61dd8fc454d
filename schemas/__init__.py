"""Data contracts of Collectors: prediction events, collector configuration, inputs API payloads.

Data only: no I/O lives here.
"""
