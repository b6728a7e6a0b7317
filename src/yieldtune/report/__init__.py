"""yieldtune.report"""
