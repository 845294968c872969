"""The review web page (`bot serve`): a person approves, rejects and edits candidates, and tries the model."""
