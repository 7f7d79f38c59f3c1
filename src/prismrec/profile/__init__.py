"""prismrec.profile"""
