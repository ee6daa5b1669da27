"""POPS: a patient balance and payment portal for medical practices."""
