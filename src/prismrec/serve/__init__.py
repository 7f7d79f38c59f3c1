"""prismrec.serve"""
