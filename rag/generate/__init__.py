"""Answer generation: the offline extractive answerer, LLM answerers, and citation checking."""
