"""yieldtune.cli"""
