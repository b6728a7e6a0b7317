"""yieldtune.chem"""
