"""builder.relocate"""
