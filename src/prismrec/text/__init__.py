"""prismrec.text"""
