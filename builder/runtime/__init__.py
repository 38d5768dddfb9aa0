"""builder.runtime"""
