"""prismrec.eval"""
