"""builder.recipe"""
