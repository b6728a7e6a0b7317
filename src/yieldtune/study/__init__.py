"""yieldtune.study"""
