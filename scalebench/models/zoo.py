"""Imports every model module so that their ``@register_model`` decorators run (see registry.py).

Add one import line per model module.
"""
