"""prismrec.models"""
