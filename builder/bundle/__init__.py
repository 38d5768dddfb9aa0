"""builder.bundle"""
