"""builder.install"""
