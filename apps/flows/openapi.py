"""Placeholder replaced by the OpenAPI-per-flow work (see add_flow_operations)."""


def add_flow_operations(result, generator, request, public):
    return result
