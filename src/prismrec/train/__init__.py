"""prismrec.train"""
