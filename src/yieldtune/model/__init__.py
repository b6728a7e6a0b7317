"""yieldtune.model"""
