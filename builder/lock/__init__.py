"""builder.lock"""
