"""Language-model methods: S2-Attention block patterns (P44) and tensor attention (P21).

Import the submodules directly (``sparsejax.llm.s2_attention``, ``sparsejax.llm.tensor_attention``).
"""
