"""prismrec.explain"""
