"""yieldtune.ensemble"""
