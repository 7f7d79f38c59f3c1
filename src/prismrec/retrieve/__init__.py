"""prismrec.retrieve"""
