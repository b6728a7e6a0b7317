"""yieldtune.train"""
