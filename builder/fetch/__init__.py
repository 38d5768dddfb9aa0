"""builder.fetch"""
