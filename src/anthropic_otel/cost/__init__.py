"""Usage, prices and spend: what a call cost, exactly, in dollars.

Imports nothing else of the package.
"""
