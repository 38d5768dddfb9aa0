"""builder.cli"""
