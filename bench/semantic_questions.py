"""The semantic cache benchmark's workload: question groups, each an original, its paraphrases
(the same question: a hit is right) and questions near in wording but different in meaning (a hit
would serve a wrong answer)."""

from __future__ import annotations

from typing import NamedTuple


class Group(NamedTuple):
    original: str
    paraphrases: tuple[str, ...]
    different: tuple[str, ...]


GROUPS: tuple[Group, ...] = (
    Group(
        "How do I reset my password?",
        (
            "How can I change my password if I forgot it?",
            "What are the steps to reset my password?",
            "I forgot my password, how do I reset it?",
        ),
        ("How do I reset my username?", "How do I change my email address?"),
    ),
    Group(
        "What is the capital of France?",
        ("Which city is the capital of France?", "What's France's capital city?"),
        ("What is the capital of Spain?", "What is the population of France?"),
    ),
    Group(
        "How do I cancel my subscription?",
        (
            "How can I cancel my plan?",
            "What do I do to end my subscription?",
            "I want to cancel my subscription, how?",
        ),
        ("How do I upgrade my subscription?", "How do I pause my subscription?"),
    ),
    Group(
        "What is your refund policy?",
        ("Can I get a refund, and how does it work?", "How do refunds work with you?"),
        ("What is your shipping policy?", "What is your privacy policy?"),
    ),
    Group(
        "How long does shipping take to Canada?",
        ("What is the delivery time for orders to Canada?", "How many days does shipping to Canada take?"),
        ("How much does shipping to Canada cost?", "How long does shipping take to Mexico?"),
    ),
    Group(
        "How do I convert a string to an integer in Python?",
        (
            "In Python, how can I turn a string into an int?",
            "What's the way to parse a string as an integer in Python?",
        ),
        (
            "How do I convert an integer to a string in Python?",
            "How do I convert a string to an integer in Java?",
        ),
    ),
    Group(
        "What is the boiling point of water at sea level?",
        (
            "At sea level, at what temperature does water boil?",
            "What temperature does water boil at sea level?",
        ),
        (
            "What is the freezing point of water at sea level?",
            "What is the boiling point of water on Mount Everest?",
        ),
    ),
    Group(
        "Who wrote Pride and Prejudice?",
        ("Who is the author of Pride and Prejudice?", "Pride and Prejudice was written by whom?"),
        ("Who wrote War and Peace?", "When was Pride and Prejudice written?"),
    ),
    Group(
        "How do I sort a list in descending order in Python?",
        (
            "How can I sort a Python list from largest to smallest?",
            "Sorting a list in reverse order in Python: how?",
        ),
        (
            "How do I sort a list in ascending order in Python?",
            "How do I sort a dictionary by value in Python?",
        ),
    ),
    Group(
        "What are the symptoms of the flu?",
        ("What symptoms does influenza cause?", "How do I know if I have the flu, what are the signs?"),
        ("What are the symptoms of a cold?", "How is the flu treated?"),
    ),
    Group(
        "How many calories are in a banana?",
        ("What is the calorie count of a banana?", "How many kcal does one banana have?"),
        ("How many calories are in an apple?", "How much potassium is in a banana?"),
    ),
    Group(
        "How do I update my billing address?",
        ("How can I change the billing address on my account?", "Where do I edit my billing address?"),
        ("How do I update my shipping address?", "How do I update my credit card?"),
    ),
    Group(
        "What time does the store open on Sunday?",
        ("When do you open on Sundays?", "What are your Sunday opening hours?"),
        ("What time does the store close on Sunday?", "What time does the store open on Saturday?"),
    ),
    Group(
        "How do I undo the last git commit?",
        ("How can I revert my most recent commit in git?", "What's the git command to undo my last commit?"),
        ("How do I undo the last git push?", "How do I amend the last git commit message?"),
    ),
    Group(
        "What is the speed of light?",
        ("How fast does light travel?", "What's the speed of light in a vacuum?"),
        ("What is the speed of sound?", "How long does light take to reach Earth from the Sun?"),
    ),
    Group(
        "Can I bring my dog on the plane?",
        ("Are dogs allowed on flights?", "Is it possible to fly with my dog in the cabin?"),
        ("Can I bring my cat on the plane?", "Can I bring my dog to the hotel?"),
    ),
    Group(
        "How do I export my data to CSV?",
        ("How can I download my data as a CSV file?", "Is there a way to export my data in CSV format?"),
        ("How do I import data from a CSV?", "How do I export my data to PDF?"),
    ),
    Group(
        "What is the difference between a virus and bacteria?",
        ("How do viruses differ from bacteria?", "Virus versus bacteria: what's the difference?"),
        ("What is the difference between a virus and a fungus?", "How do antibiotics work against bacteria?"),
    ),
    Group(
        "How do I enable two-factor authentication?",
        ("How can I turn on 2FA for my account?", "What are the steps to set up two-factor authentication?"),
        ("How do I disable two-factor authentication?", "How do I recover my account without my 2FA device?"),
    ),
    Group(
        "What is the tallest mountain in the world?",
        ("Which mountain is the highest on Earth?", "What's the world's highest mountain?"),
        ("What is the tallest building in the world?", "What is the longest river in the world?"),
    ),
    Group(
        "How do I make a cup of green tea?",
        ("What's the best way to brew green tea?", "How should I prepare green tea?"),
        ("How do I make a cup of coffee?", "How much caffeine is in green tea?"),
    ),
    Group(
        "What are your customer support hours?",
        ("When is customer support available?", "At what times can I reach your support team?"),
        ("What is your customer support phone number?", "What are your office hours in London?"),
    ),
    Group(
        "How do I delete my account?",
        ("How can I permanently remove my account?", "What do I do to close my account for good?"),
        ("How do I deactivate my account temporarily?", "How do I delete a post from my account?"),
    ),
    Group(
        "What is photosynthesis?",
        ("Can you explain what photosynthesis is?", "How would you define photosynthesis?"),
        ("What is cellular respiration?", "Where does photosynthesis take place in a plant cell?"),
    ),
    Group(
        "How do I center a div in CSS?",
        (
            "What's the way to center a div horizontally and vertically with CSS?",
            "How can I center a div element using CSS?",
        ),
        ("How do I center text in CSS?", "How do I hide a div in CSS?"),
    ),
    Group(
        "How much does the premium plan cost per month?",
        ("What is the monthly price of the premium plan?", "How much is premium each month?"),
        ("How much does the premium plan cost per year?", "How much does the basic plan cost per month?"),
    ),
    Group(
        "What is the largest planet in our solar system?",
        ("Which planet in the solar system is the biggest?", "What's the biggest planet orbiting the Sun?"),
        (
            "What is the smallest planet in our solar system?",
            "What is the hottest planet in our solar system?",
        ),
    ),
    Group(
        "How do I track my order?",
        ("Where can I see the status of my order?", "How can I follow my package delivery?"),
        ("How do I return my order?", "How do I change my order?"),
    ),
    Group(
        "What is a good way to learn Spanish quickly?",
        ("How can I learn Spanish fast?", "What's the quickest method to pick up Spanish?"),
        ("What is a good way to learn French quickly?", "How long does it take to learn Spanish?"),
    ),
    Group(
        "How do I install Node.js on Ubuntu?",
        (
            "What's the way to set up Node.js on an Ubuntu machine?",
            "Installing Node.js on Ubuntu: how do I do it?",
        ),
        ("How do I uninstall Node.js on Ubuntu?", "How do I install Node.js on Windows?"),
    ),
    Group(
        "Why is the sky blue?",
        ("What makes the sky look blue?", "What causes the blue color of the sky?"),
        ("Why is the sunset red?", "Why is the ocean blue?"),
    ),
    Group(
        "How do I apply for a refund on a damaged item?",
        (
            "My item arrived broken, how do I get my money back?",
            "How can I request a refund for a damaged product?",
        ),
        ("How do I apply for a replacement of a damaged item?", "How do I report a missing item?"),
    ),
    Group(
        "What is the recommended daily water intake?",
        ("How much water should I drink per day?", "How many liters of water a day are recommended?"),
        ("What is the recommended daily protein intake?", "How much water should a dog drink per day?"),
    ),
    Group(
        "How do I merge two dictionaries in Python?",
        (
            "What's the way to combine two dicts in Python?",
            "How can I join two Python dictionaries into one?",
        ),
        ("How do I merge two lists in Python?", "How do I compare two dictionaries in Python?"),
    ),
    Group(
        "When was the Eiffel Tower built?",
        ("In what year was the Eiffel Tower constructed?", "When did they build the Eiffel Tower?"),
        ("How tall is the Eiffel Tower?", "When was the Statue of Liberty built?"),
    ),
    Group(
        "How do I change the language of the app?",
        ("Where can I switch the app's language?", "How can I set the app to a different language?"),
        ("How do I change the theme of the app?", "How do I change the time zone of the app?"),
    ),
    Group(
        "What is the minimum age to open an account?",
        (
            "How old do I have to be to open an account?",
            "What's the age requirement for creating an account?",
        ),
        ("What documents do I need to open an account?", "What is the minimum deposit to open an account?"),
    ),
    Group(
        "How do I invite a teammate to my workspace?",
        (
            "How can I add a colleague to my workspace?",
            "What's the way to invite someone to join my workspace?",
        ),
        ("How do I remove a teammate from my workspace?", "How do I create a new workspace?"),
    ),
    Group(
        "What causes inflation?",
        ("Why does inflation happen?", "What are the main drivers of inflation?"),
        ("What causes deflation?", "How does inflation affect interest rates?"),
    ),
    Group(
        "How do I reverse a string in JavaScript?",
        ("What's the way to reverse a string using JavaScript?", "How can I flip a string backwards in JS?"),
        ("How do I reverse an array in JavaScript?", "How do I reverse a string in C?"),
    ),
    Group(
        "Is the museum open on public holidays?",
        ("Does the museum open on bank holidays?", "Can I visit the museum on a public holiday?"),
        ("Is the museum free on public holidays?", "Is the library open on public holidays?"),
    ),
    Group(
        "How do I connect my printer to Wi-Fi?",
        (
            "How can I set up my printer on the wireless network?",
            "What are the steps to get my printer onto Wi-Fi?",
        ),
        ("How do I connect my printer with a USB cable?", "How do I connect my phone to Wi-Fi?"),
    ),
    Group(
        "What is the return window for electronics?",
        (
            "How many days do I have to return electronics?",
            "How long can I wait before returning an electronic item?",
        ),
        ("What is the warranty period for electronics?", "What is the return window for clothing?"),
    ),
    Group(
        "How do I calculate the area of a circle?",
        ("What's the formula for the area of a circle?", "How is a circle's area computed?"),
        ("How do I calculate the circumference of a circle?", "How do I calculate the area of a triangle?"),
    ),
    Group(
        "Do you ship internationally?",
        ("Can you deliver to other countries?", "Is international shipping available?"),
        ("Do you ship on weekends?", "Do you offer free shipping?"),
    ),
    Group(
        "How do I set up a Python virtual environment?",
        ("How can I create a virtualenv for Python?", "What's the way to make a Python venv?"),
        ("How do I delete a Python virtual environment?", "How do I set up a Docker container for Python?"),
    ),
    Group(
        "What are the side effects of ibuprofen?",
        ("What adverse effects can ibuprofen cause?", "Does ibuprofen have side effects, and which ones?"),
        ("What are the side effects of paracetamol?", "What is the maximum daily dose of ibuprofen?"),
    ),
    Group(
        "How do I reset my router?",
        ("How can I restart my router to factory settings?", "What are the steps to reset my Wi-Fi router?"),
        ("How do I update my router's firmware?", "How do I reset my modem password?"),
    ),
    Group(
        "Who painted the Mona Lisa?",
        ("Who is the artist behind the Mona Lisa?", "The Mona Lisa was painted by whom?"),
        ("Where is the Mona Lisa displayed?", "Who painted The Starry Night?"),
    ),
    Group(
        "How do I get a copy of my invoice?",
        ("Where can I download my invoice?", "How can I obtain a copy of my bill?"),
        ("How do I dispute a charge on my invoice?", "How do I change the name on my invoice?"),
    ),
)
